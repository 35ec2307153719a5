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
        # torch: install the CPU build first (`pip install torch==2.13.0`); any 2.x satisfies this range.
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
        "pandas",  # score tables of the SED metrics (sed_scores_eval's format)
        # SED metrics (PSDS1, collar/segment F1); its dependency dcase_util imports pkg_resources, which
        # setuptools removed in 82
        "sed_scores_eval>=0.0.4",
        "setuptools<82",
    ],
    extras_require={"test": ["pytest>=8", "matplotlib"], "plot": ["matplotlib"]},
    entry_points={"console_scripts": ["audiozoo=audiozoo.cli:main"]},
)
