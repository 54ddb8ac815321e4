"""Built-in stage implementations, one module each; `builtin` registers them through the plugin hook."""
