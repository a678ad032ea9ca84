"""One file per schema revision; never edit one that has shipped."""
