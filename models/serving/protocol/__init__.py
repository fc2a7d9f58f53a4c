"""Wire formats of the model server, as pure functions over bytes, arrays and messages.

``rest``: JSON bodies (``/predict`` and the Open Inference Protocol's JSON ``/infer``).
``binary``: the OIP REST binary tensor extension (raw tensor bytes after a JSON header).
``tensors``: OIP datatypes, the raw little-endian tensor encoding both binary forms share, and
the conversion to and from this model's one input and two outputs.
``grpc``: the OIP gRPC messages (``grpc_predict_v2.proto`` and its generated stubs) and their codec.
"""
