-- wrk script: adds an Authorization header taken from the environment (BENCH_AUTHORIZATION),
-- set once at start-up so the script costs nothing per request.
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
