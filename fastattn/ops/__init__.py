"""The public ops: argument checks, backend choice, custom-op registration and autograd."""
