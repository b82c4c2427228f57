"""model_checker."""
