"""GAN training on GluonCV's estimator: the estimator, its metrics, handlers and checkpoints."""
from .gan_estimator import GANBatchProcessor, GANEstimator, latent_batch  # noqa: F401
from .step_metrics import GANMetric, GANStepOutput, gan_metrics  # noqa: F401
from .event_handler import (CheckpointHandler, EpochCounter, EvaluationHandler,  # noqa: F401
                            GANLoggingHandler, HandlerClock, HistoryHandler,
                            LearningRateDecayHandler, SampleHandler, StopOnSignal,
                            TensorBoardHandler)
from .ema import GeneratorEMA  # noqa: F401
from .augment import DiffAugment  # noqa: F401
from . import checkpoint  # noqa: F401
from .run_report import ReportHandler  # noqa: F401
