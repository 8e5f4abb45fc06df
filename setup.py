"""watchnext: YouTube's multitask Watch-Next ranker as a TFX pipeline.

The repository's top-level folders (pipeline/, models/, components/, kubeflow/,
simulator/) install as subpackages of one `watchnext` package, so generic names
such as `models` never shadow, or get shadowed by, another installed package.
The exact dependency versions live in requirements/lock.txt; the ranges here
only state what the code needs.
"""

from setuptools import find_packages, setup

# bench/ (benchmarks, drills, experiments), scripts/ and tests/ stay out of the distribution: they
# import watchnext as a user would and run from a clone (`python -m bench ...`).
SUBPACKAGES = ["core", "pipeline", "models", "components", "kubeflow", "simulator", "serving", "experiment"]

packages = ["watchnext"] + [
    f"watchnext.{p}"
    for p in find_packages(where=".", include=[f"{s}" for s in SUBPACKAGES] + [f"{s}.*" for s in SUBPACKAGES])
]

setup(
    name="watchnext",
    version="0.1.0",
    description="Multitask (MMoE) watch-next ranking as a TFX pipeline, after Zhao et al., RecSys 2019",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.11",
    package_dir={"watchnext": "."},
    packages=packages,
    # configs/: the worked dataset configs (e.g. census_income.yaml), read by `python -m bench census`
    # and by users of an installed wheel or the Kubeflow image, not only from a clone.
    package_data={"watchnext": ["kubeflow/*.yaml", "kubeflow/Dockerfile", "configs/*.yaml"]},
    install_requires=[
        "tfx==1.16.0",
        "tensorflow==2.16.2",
        "tf-keras==2.16.0",
        "tensorflow-recommenders==0.7.7",
        "tensorflow-serving-api==2.16.1",
        "dill>=0.3.1.1,<0.3.2",
        "protobuf>=3.20.3,<4",
        "pyyaml",
        # report.md's plots (pipeline/report_plots.py); TFMA already pulls it in.
        "matplotlib",
        "tqdm",
    ],
    # `pip install -e '.[peer]'`: the peer implementation `python -m bench deepctr_peer` trains beside
    # watchnext's model. Pinned: the benchmark compares against this release's MMOE. It declares no
    # TensorFlow dependency of its own, so it cannot move the pins above.
    extras_require={"peer": ["deepctr==0.9.4"]},
    entry_points={"console_scripts": ["watchnext=watchnext.cli:main"]},
)
