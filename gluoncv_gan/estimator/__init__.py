"""GAN training on GluonCV's estimator: the estimator, its metrics, handlers and checkpoints."""
from .gan_estimator import GANBatchProcessor, GANEstimator, latent_batch  # noqa: F401
from .step_metrics import GANMetric, GANStepOutput, gan_metrics  # noqa: F401
from .event_handler import (EpochCounter, EvaluationHandler, GANLoggingHandler,  # noqa: F401
                            HandlerClock, HistoryHandler, LearningRateDecayHandler, SampleHandler,
                            StopOnSignal, TensorBoardHandler)
from .ema import GeneratorEMA  # noqa: F401
from .augment import DiffAugment  # noqa: F401
from . import checkpoint  # noqa: F401
from .checkpoint import RunCheckpointHandler  # noqa: F401
from .run_report import ReportHandler  # noqa: F401
