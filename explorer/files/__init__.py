"""Files in and out, without Qt: sessions, logits loaders, data exports, code snippets, numbers as text, presets."""
