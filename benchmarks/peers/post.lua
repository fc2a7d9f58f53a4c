-- wrk script: POST the file named by $BODY_FILE (read once per thread). The body is JSON unless
-- $INFERENCE_HEADER_LENGTH is set: then it is an Open Inference Protocol binary-extension body,
-- whose first $INFERENCE_HEADER_LENGTH bytes are the JSON header and the rest raw tensor bytes.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
local header_length = os.getenv("INFERENCE_HEADER_LENGTH")
if header_length and header_length ~= "" then
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = header_length
else
  wrk.headers["Content-Type"] = "application/json"
end
-- $THINK_MS (optional, > 0): each connection waits a random time, exponential with this mean in
-- ms, before each request, so the 16 connections together send roughly Poisson arrivals below
-- saturation instead of back-to-back requests.
local think = tonumber(os.getenv("THINK_MS") or "")
if think and think > 0 then
  function delay()
    return math.floor(-math.log(1 - math.random()) * think + 0.5)
  end
end
