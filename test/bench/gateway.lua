-- wrk script for settle-gateway: one payment per request, a unique
-- transaction_id and idempotency_key each (run id, thread, counter).
-- Environment: GW_TOKEN, GW_RUN (a prefix unique per run), GW_SRC, GW_DST,
-- GW_CPTY (accounts and counterparty), GW_AMOUNT; GW_RATE (requests per
-- second, all threads together): paced, each thread issues its requests at
-- fixed intervals (a request waits for a free connection: with too few
-- connections for the rate the load falls behind, which the run reports).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gw_timespec;
int clock_gettime(int clk, gw_timespec *ts);
]]
local ts = ffi.new("gw_timespec")
local function now()
    ffi.C.clock_gettime(1, ts)   -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local threads = {}
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    n = 0
    run = os.getenv("GW_RUN") or "run"
    headers = {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. os.getenv("GW_TOKEN"),
    }
    template = '{"transaction_id":"%s","amount":"' .. (os.getenv("GW_AMOUNT") or "1.00") ..
        '","source_currency":"USD","destination_currency":"USD","source_account":"' ..
        os.getenv("GW_SRC") .. '","destination_account":"' .. os.getenv("GW_DST") ..
        '","counterparty_id":"' .. os.getenv("GW_CPTY") .. '","idempotency_key":"%s"}'
    created = 0
    other = 0
    local rate = tonumber(os.getenv("GW_RATE") or "0")
    local nthreads = tonumber(os.getenv("GW_THREADS") or "1")
    interval = rate > 0 and nthreads / rate or 0
    slot = 0
end

-- paced load: the time until this thread's next slot
function delay()
    if interval == 0 then return 0 end
    local t = now()
    if slot < t then slot = t end
    local wait = slot - t
    slot = slot + interval
    return wait * 1000
end

function request()
    n = n + 1
    local id = string.format("%s_%d_%d", run, tid, n)
    return wrk.format("POST", "/api/v1/transactions", headers, string.format(template, id, id))
end

function response(status, headers, body)
    if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
    local c, o = 0, 0
    for _, t in ipairs(threads) do
        c = c + t:get("created")
        o = o + t:get("other")
    end
    io.write(string.format("RESULT created=%d other=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
        c, o, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
        latency.max / 1e3))
end
