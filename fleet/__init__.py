"""The fleet operator's side: the mipai-fleet command line. Arrives with its issue."""
