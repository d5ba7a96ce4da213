"""OpenCV 4's darknet importer, run in another Python environment for tests whose own OpenCV is 5 or newer (OpenCV
5 removed ``cv2.dnn.readNetFromDarknet``, the reference implementation of darknet's arithmetic in these tests).

``python opencv4_oracle.py REQUEST.npz RESULT.npz``: REQUEST holds ``cfg`` and ``weights`` (paths), ``blob`` (the
NCHW input) and ``names`` (layer names); RESULT gets ``output_0``, ``output_1``... in that order. The environment
needs only ``opencv-python-headless<5`` and numpy; CI builds one and names its interpreter in
``DEFI1_OPENCV4_PYTHON`` (see ``.ci/run``).
"""

import sys

import cv2
import numpy as np


def main(request_path, result_path):
    request = np.load(request_path, allow_pickle=False)
    network = cv2.dnn.readNetFromDarknet(str(request["cfg"]), str(request["weights"]))
    network.setInput(request["blob"])
    outputs = network.forward([str(name) for name in request["names"]])
    np.savez(result_path, **{f"output_{index}": output for index, output in enumerate(outputs)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
