from .registry import PROVIDERS, UnknownProvider, get_provider, provider_choices

__all__ = ["PROVIDERS", "UnknownProvider", "get_provider", "provider_choices"]
