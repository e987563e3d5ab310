"""Packaging of GlanceSync."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements() -> list[str]:
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="glancesync",
    version="2.1.0",
    description="Keep OpenStack Glance images synchronised from a master region",
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    python_requires=">=3.10",
    packages=find_packages(include=["glancesync", "glancesync.*"])
    + ["glancesync_scripts"],
    package_dir={"glancesync_scripts": "scripts"},
    include_package_data=True,
    package_data={"glancesync.views": ["*.json"]},
    install_requires=requirements(),
    entry_points={
        "console_scripts": [
            "glancesync-sync = glancesync_scripts.sync:main",
            "glancesync-printimages = glancesync_scripts.printimages:main",
            "glancesync-backup = glancesync_scripts.backup:main",
            "glancesync-watch = glancesync_scripts.watch:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Environment :: OpenStack",
        "License :: OSI Approved :: Apache Software License",
    ],
)
