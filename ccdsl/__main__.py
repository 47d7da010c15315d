from ccdsl.cli import entrypoint

entrypoint()
