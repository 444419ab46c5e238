"""Models: what a model on disk is, and the parts that find, keep, load and install them.

The package exports the model taxonomy and the config classes (:mod:`invoke_sdk.models.configs`), the
vocabulary every model-related plugin shares. Each role has its own module:

- :mod:`~invoke_sdk.models.probing`: the prober protocol and the read-only view of a model on disk;
- :mod:`~invoke_sdk.models.records`: the model record store, one store of the storage backend;
- :mod:`~invoke_sdk.models.loading`: the loader protocol and what ``context.models.load`` returns;
- :mod:`~invoke_sdk.models.install`: install jobs, and :mod:`~invoke_sdk.models.install_events` their events;
- :mod:`~invoke_sdk.models.load_events`: the events of a model loading into the cache.
"""

from invoke_sdk.models.configs import (
    STANDARD_MODEL_CONFIGS,
    BaseModelType,
    CheckpointConfigBase,
    CLIPEmbedCheckpointConfig,
    CLIPEmbedDiffusersConfig,
    CLIPVisionDiffusersConfig,
    ControlNetCheckpointConfig,
    ControlNetDiffusersConfig,
    DiffusersConfigBase,
    IPAdapterCheckpointConfig,
    IPAdapterInvokeAIConfig,
    LoRADiffusersConfig,
    LoRALyCORISConfig,
    MainCheckpointConfig,
    MainConfigBase,
    MainDiffusersConfig,
    ModelConfigBase,
    ModelFormat,
    ModelRepoVariant,
    ModelSourceType,
    ModelType,
    ModelVariantType,
    SchedulerPredictionType,
    T2IAdapterCheckpointConfig,
    T2IAdapterDiffusersConfig,
    T5EncoderCheckpointConfig,
    T5EncoderDiffusersConfig,
    TextualInversionFileConfig,
    TextualInversionFolderConfig,
    VAECheckpointConfig,
    VAEDiffusersConfig,
    config_tag,
    model_config_tag,
)

__all__ = [
    "STANDARD_MODEL_CONFIGS",
    "BaseModelType",
    "CLIPEmbedCheckpointConfig",
    "CLIPEmbedDiffusersConfig",
    "CLIPVisionDiffusersConfig",
    "CheckpointConfigBase",
    "ControlNetCheckpointConfig",
    "ControlNetDiffusersConfig",
    "DiffusersConfigBase",
    "IPAdapterCheckpointConfig",
    "IPAdapterInvokeAIConfig",
    "LoRADiffusersConfig",
    "LoRALyCORISConfig",
    "MainCheckpointConfig",
    "MainConfigBase",
    "MainDiffusersConfig",
    "ModelConfigBase",
    "ModelFormat",
    "ModelRepoVariant",
    "ModelSourceType",
    "ModelType",
    "ModelVariantType",
    "SchedulerPredictionType",
    "T2IAdapterCheckpointConfig",
    "T2IAdapterDiffusersConfig",
    "T5EncoderCheckpointConfig",
    "T5EncoderDiffusersConfig",
    "TextualInversionFileConfig",
    "TextualInversionFolderConfig",
    "VAECheckpointConfig",
    "VAEDiffusersConfig",
    "config_tag",
    "model_config_tag",
]
