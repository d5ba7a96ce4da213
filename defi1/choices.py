"""The allowed values of the settings that take one of a few names, defined once.

Standard library only, so that the command line can offer them as ``choices`` without importing Keras; the library
checks its arguments against the same tuples.
"""

#: Inference engines (:func:`defi1.realtime.engines.make_forward`); ``"auto"`` picks one of them.
ENGINES = ("keras", "opencv", "onnxruntime")
ENGINE_CHOICES = ("auto",) + ENGINES

#: Weight of the YOLO loss's box terms (:class:`defi1.yolo.loss.YoloLoss`): darknet's ``2 - w * h``, or 1.
BOX_WEIGHTINGS = ("darknet", "uniform")

#: The YOLO loss's box term (:class:`defi1.yolo.loss.YoloLoss`): darknet's centre cross-entropy and log-size squared
#: error, or ``1 - CIoU`` of the decoded box (complete IoU, as YOLOv4 and later train).
BOX_LOSSES = ("darknet", "ciou")

#: Learning-rate schedules of a detection training run: cut 10x on a plateau, or warm-up and cosine decay.
LEARNING_RATE_SCHEDULES = ("plateau", "cosine")

#: What ``best.keras`` is chosen on (``--best-metric``): the logged quantity and whether higher is better.
BEST_METRICS = {"map50-95": ("val_map50_95", "max"), "map50": ("val_map50", "max"), "val_loss": ("val_loss", "min")}
