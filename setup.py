"""tfshop: one multi-task TensorFlow/Keras model for e-commerce, from shop logs to TF Serving."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="tfshop",
    version="0.1.0",
    description=(
        "End-to-end multi-task TensorFlow/Keras pipeline for e-commerce "
        "(CTR, CVR, ranking, retrieval, intent) served with TF Serving"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["tfshop", "tfshop.*"]),
    install_requires=[
        "tensorflow~=2.21.0",
        "tf-keras~=2.21.0",
        "tensorflow-text~=2.21.0",
        "tensorflow-recommenders~=0.7.7",
        "tensorboard~=2.21.0",
        # 2.19's stubs speak the same gRPC API; tfx-bsl 1.21 (its C++ Example encoder writes
        # prepare's records) pins serving-api below 2.20 and brings Apache Beam
        "tensorflow-serving-api>=2.19,<2.22",
        "tfx-bsl~=1.21.0",
        "grpcio>=1.60",
        "requests>=2.31",
        "orjson>=3.10",
        "safetensors>=0.4",
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
        "pandas>=2.2,<4",
        "pyarrow>=15",
        "pyyaml>=6",
        "numpy>=1.26",
        "psutil>=5.9",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "ruff>=0.6"],
        # benchmarks only: the peers compared side by side, and the profiler's trace converter
        "bench": ["deepctr==0.9.4", "scikit-learn>=1.3", "tensorboard-plugin-profile>=2.19"],
    },
    entry_points={"console_scripts": ["tfshop=tfshop.cli:main"]},
)
