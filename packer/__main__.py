from packer.cli import entrypoint

entrypoint()
