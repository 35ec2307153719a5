"""Released sizes: random-weight checkpoints in the original container layouts, at the sizes the authors released.

Each family module (beats.py: BEATs, its tokenizer and the BEATs SED student; timm_vits.py: AST, ATST-F, fPaSST,
ASiT, M2D; eat_byol_a_frame_mn.py: EAT, BYOL-A, frame-MobileNet) defines
- `PARITY_LAYOUTS`: parity case name -> (write, read_original). `write(model) -> object` is what the original code's
  `torch.save` would have written for the weights of a converted model (the inverse of our conversion);
  `read_original(path)` reads the case's real file. tests/test_original_layouts.py checks the two are equal, so the
  layout the released-size checks write is the original's.
- `RELEASES`: one `Release` (common.py) per released architecture, built at its released size.
tests/test_released_sizes.py (marked slow) writes each release with its `write`, converts it with the conversion
script, loads it through the Auto classes and runs a short clip.
"""
