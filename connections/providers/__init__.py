from .registry import (
    PROVIDERS,
    UnknownProvider,
    definition_files,
    get_provider,
    provider_choices,
    provider_for,
)

__all__ = ["PROVIDERS", "UnknownProvider", "definition_files", "get_provider", "provider_choices", "provider_for"]
