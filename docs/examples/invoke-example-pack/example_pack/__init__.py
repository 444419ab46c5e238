"""An example Invoke Host node pack: text nodes."""
