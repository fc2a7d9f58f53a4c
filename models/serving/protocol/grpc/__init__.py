"""The Open Inference Protocol over gRPC: ``grpc_predict_v2.proto``, its generated stubs
(``make grpc-stubs``) and ``codec``, which turns its messages into this model's tensors and back."""
