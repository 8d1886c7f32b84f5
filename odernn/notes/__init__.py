"""The lecture notes made executable: BPTT by hand, gradient diagnostics, the notes'
examples, the four ways to learn an RNN, autonomous dynamics."""
