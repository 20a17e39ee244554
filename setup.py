"""ament_python / setuptools build for hstnn_ros (works with colcon and with plain pip)."""

from glob import glob

from setuptools import find_packages, setup

package_name = "hstnn_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=[*find_packages(include=["hstnn_ros", "hstnn_ros.*"]), "hstnn_ros.data_tools"],
    package_dir={"hstnn_ros.data_tools": "data_tools"},
    package_data={"hstnn_ros": ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/models", glob("models/*.json") + glob("models/*.md")),
        *[
            ("share/" + package_name + "/" + d, glob(d + "/*"))
            for d in sorted(glob("models/*/"))
        ],
    ],
    install_requires=[
        "numpy>=1.24",
        "numba>=0.58",
        "torch>=2.1",
        "safetensors>=0.4",
        "rosbags>=0.10",
        "opencv-python-headless>=4.8",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "pyyaml>=6",
        "psutil>=5.9",
        "jsonschema>=4",
    ],
    extras_require={
        "aedat": ["dv-processing>=1.7", "lz4>=4", "zstandard>=0.20"],  # lz4/zstd: packet checks before dv
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
        "ray": ["ray>=2.9"],
        "test": ["pytest", "hypothesis", "scikit-learn"],
    },
    zip_safe=False,  # numba caches compiled kernels beside their module
    maintainer="hstnn_ros maintainers",
    maintainer_email="hstnn-ros@example.com",
    description="HSTNN place recognition from DVS events and RGB-D for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "place_recognition_node = hstnn_ros.ros.node:main",
            "bag_player = hstnn_ros.ros.bag_player:main",
            "hstnn-bag-player = hstnn_ros.ros.bag_player:main",
            "hstnn-demo = hstnn_ros.data_tools.demo:main",
            "hstnn-synth-route = hstnn_ros.data_tools.synth_route:main",
            "hstnn-dataset = hstnn_ros.data_tools.dataset:main",
            "hstnn-frontends = hstnn_ros.data_tools.frontends:main",
            "hstnn-train = hstnn_ros.data_tools.train:main",
            "hstnn-fit-route = hstnn_ros.data_tools.fit_route:main",
            "hstnn-robustness = hstnn_ros.data_tools.robustness:main",
            "hstnn-cross-condition = hstnn_ros.data_tools.cross_condition:main",
            "hstnn-replay = hstnn_ros.data_tools.replay:main",
            "hstnn-export-tianjicx = hstnn_ros.data_tools.export_tianjicx:main",
            "hstnn-tianjicx-sim = hstnn_ros.data_tools.tianjicx_sim:main",
        ],
    },
)
