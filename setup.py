"""audiozoo: pretrained audio models (BEATs, AST, EAT, BYOL-A, PretrainedSED) in the Hugging Face stack."""
from setuptools import find_packages, setup

setup(
    name="audiozoo",
    version="0.1.0",
    description="Published pretrained audio models as exact, fast Hugging Face transformers ports",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"audiozoo": ["data/*.csv", "data/*.md", "default_model/*"]},
    install_requires=[
        # torch: install the CPU build first (`pip install torch==2.13.0`, or PyTorch's CPU wheel index, see the
        # README); any 2.x satisfies this range.
        "torch>=2.4",
        "transformers>=5.0,<6",
        "accelerate>=1.0",
        "datasets>=3.0",
        "evaluate>=0.4",
        "safetensors>=0.4",
        "huggingface_hub>=0.30",
        "soundfile>=0.12",
        "soxr>=0.3",
        "numpy>=1.24",
        "scipy",
        "tqdm",  # progress bars of the training loops
        "h5py>=3",  # teacher pseudo-labels for `audiozoo distill --pseudo_labels` (HDF5)
        "pyyaml>=6",  # model-card metadata
    ],
    extras_require={
        # SED metrics (PSDS1, collar/segment F1: audiozoo.sed.evaluation, validation of `audiozoo distill`);
        # sed_scores_eval pulls in sed_eval and dcase_util, whose import of pkg_resources needs setuptools < 82
        "sed": ["sed_scores_eval>=0.0.4", "pandas", "setuptools<82"],
        # `audiozoo detect --plot` and audiozoo.sed.plot
        "plot": ["matplotlib>=3.6"],
        "test": ["pytest>=8", "sed_scores_eval>=0.0.4", "pandas", "setuptools<82", "matplotlib>=3.6"],
    },
    py_modules=["audiozoo_cli"],
    entry_points={"console_scripts": ["audiozoo=audiozoo_cli:main"]},
)
