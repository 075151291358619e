-- bench/submit.lua - wrk script: POST /api/dtmsvr/submit of a two-step saga
-- with a unique gid per request. The branches point at the business stub
-- (BENCH_STUB, e.g. http://127.0.0.1:8081); BENCH_WAIT=1 adds
-- "wait_result":true, so each request lasts until both actions succeeded.
--
-- gid = bench-<time>-<thread>-<random>-<counter>: unique across threads and
-- across runs against the same Redis.

local stub = os.getenv("BENCH_STUB") or "http://127.0.0.1:8081"
local wait = os.getenv("BENCH_WAIT") == "1"

local nthreads = 0
function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
end

local counter = 0
local prefix, tail
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   local id = tid or 0
   math.randomseed(os.time() + id * 7919)
   prefix = string.format('{"gid":"bench-%x-%d-%06x-', os.time(), id, math.random(0, 0xffffff))
   tail = '","trans_type":"saga","steps":['
      .. '{"action":"' .. stub .. '/TransOut","compensate":"' .. stub .. '/TransOutRevert"},'
      .. '{"action":"' .. stub .. '/TransIn","compensate":"' .. stub .. '/TransInRevert"}],'
      .. '"payloads":["{\\"amount\\":30}","{\\"amount\\":30}"]'
      .. (wait and ',"wait_result":true' or '')
      .. '}'
end

function request()
   counter = counter + 1
   return wrk.format("POST", "/api/dtmsvr/submit", headers, prefix .. counter .. tail)
end
