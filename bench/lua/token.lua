-- wrk script: the client credentials grant as a form POST (RFC 6749 §4.4.2), body taken from
-- the environment (BENCH_TOKEN_BODY, already form-encoded), built once at start-up.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_TOKEN_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
