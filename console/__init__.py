"""Terminal helpers shared by the command lines (mipai-box, mipai-seal)."""
