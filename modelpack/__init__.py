"""The model archive and how to run it, with no database: the layer training writes with and evaluation and
serving read with.

- ``archive``: the archive format (a tar.gz whose manifest lists every file's SHA-256), pack and verified unpack.
- ``store``: where archives are kept (a folder or an S3 bucket).
- ``text``: tokeniser, vocabulary and span decoding; export copies this file into every text archive.
- ``inputs``: what a model accepts, and the error for what it does not.
- ``runtime``: an unpacked archive loaded for its task type (text, multi-label, spans, image) on a backend.
- ``backends``: one module per engine (ONNX Runtime, its INT8 copy, the PyTorch program, TensorRT and
  the build of its plans).
"""
