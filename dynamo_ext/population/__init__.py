"""The population side of DYNAMO: tasks, base models, their training, recording and streaming.

docs/method.md, "Base models and their recording". A *population* is a set of
trained base models sharing one input space; a *recording* holds every
model's hidden trajectories and outputs on the same probe inputs: what a
meta-model is fitted to.

Modules: ``task_data`` (TaskData, a user's tensors), ``tasks`` and ``neurogym``
(the generated and neurogym tasks), ``base_rnn``, ``ctrnn`` and
``base_cnn`` (the base models), ``step`` (the one-step maps of the step
protocol), ``families`` (which architectures a family trains),
``training`` (one base model), ``zoo`` (a whole population, resumably),
``recording`` and ``population`` (members, recordings and the recording protocol a fit reads),
``storage`` (a population saved and loaded), ``protocol`` (a user's module checked against the
recording protocol),
``streaming`` (recordings too large for memory, on disk), ``attractors`` (point,
line and bistable networks built, not trained: a ground truth where geometry misleads),
``continuum`` (such networks at any N, with continuous ground-truth parameters).
"""
from .tasks import PULSE_TASKS, TASKS, TaskData, accuracy, load_task
from .base_rnn import ARCHS, RNN_ARCHS, BaseRNN
from .ctrnn import CTRNN
from .base_cnn import ACTIVATIONS, FAMILIES, BaseCNN, RecordedCNN
from .families import DEFAULT_ARCHS, FAMILY_ARCHS, build_base_model, family_of
from .training import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, TrainConfig, evaluate, task_loss, train_base_model
from .recording import Member, Recording, RecordingSource, check_shared_inputs, layer_channels_of, param_dtype
from .population import MANIFEST, Population
from .zoo import train_population
from .streaming import StreamedRecording, StreamedTargets, record_to_disk

__all__ = [
    "ACTIVATIONS", "ARCHS", "BaseCNN", "BaseRNN", "CTRNN", "DEFAULT_ARCHS", "DEFAULT_LR", "DEFAULT_WEIGHT_DECAY",
    "FAMILIES", "FAMILY_ARCHS", "MANIFEST", "Member", "PULSE_TASKS", "Population", "RNN_ARCHS", "RecordedCNN",
    "Recording", "RecordingSource", "StreamedRecording", "StreamedTargets", "TASKS", "TaskData", "TrainConfig", "accuracy",
    "build_base_model", "check_shared_inputs", "evaluate", "family_of", "layer_channels_of", "load_task",
    "param_dtype", "record_to_disk", "task_loss", "train_base_model", "train_population",
]
