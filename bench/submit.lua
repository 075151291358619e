-- bench/submit.lua - wrk script: POST /api/dtmsvr/submit of a two-step
-- transaction with a unique gid per request. Parameters (environment):
--
--   BENCH_TYPE   saga (default) or msg: a msg is submitted directly, without
--                prepare, and delivers both steps after the answer
--   BENCH_STUB   the business stub, e.g. http://127.0.0.1:26790; its /TransOut,
--                /TransIn (and the saga's /...Revert compensations) are the URLs
--   BENCH_EMPTY  1: empty branch URLs (an empty URL succeeds without a call;
--                dtm's own benchmark shape)
--   BENCH_WAIT   1: "wait_result":true, so each request lasts until every
--                branch succeeded and the transaction is stored as succeed
--   BENCH_TAG    gid prefix, so the runner can find this run's transactions
--                (default "bench")
--   BENCH_DELAY  ms each connection waits between requests (0 = none); the
--                runner uses it to offer a fixed fraction of the peak load
--
-- gid = <tag>-<time>-<thread>-<random>-<counter>: unique across wrk threads
-- and across runs against the same Redis.
--
-- The four workloads of bench/run.sh:
--   saga             BENCH_TYPE=saga
--   saga_wait        BENCH_TYPE=saga BENCH_WAIT=1
--   msg              BENCH_TYPE=msg
--   saga_empty_wait  BENCH_TYPE=saga BENCH_EMPTY=1 BENCH_WAIT=1

local kind = os.getenv("BENCH_TYPE") or "saga"
local stub = os.getenv("BENCH_STUB") or "http://127.0.0.1:26790"
local empty = os.getenv("BENCH_EMPTY") == "1"
local wait = os.getenv("BENCH_WAIT") == "1"
local tag = os.getenv("BENCH_TAG") or "bench"
local pause = tonumber(os.getenv("BENCH_DELAY") or "0") or 0

local nthreads = 0
function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
end

local counter = 0
local prefix, tail
local headers = { ["Content-Type"] = "application/json" }

local function url(path)
   if empty then return "" end
   return stub .. path
end

local function step(action, compensate)
   if kind == "msg" then
      return '{"action":"' .. url(action) .. '"}'
   end
   return '{"action":"' .. url(action) .. '","compensate":"' .. url(compensate) .. '"}'
end

function init(args)
   local id = tid or 0
   math.randomseed(os.time() + id * 7919)
   prefix = string.format('{"gid":"%s-%x-%d-%06x-', tag, os.time(), id, math.random(0, 0xffffff))
   tail = '","trans_type":"' .. kind .. '","steps":['
      .. step("/TransOut", "/TransOutRevert") .. ','
      .. step("/TransIn", "/TransInRevert") .. '],'
      .. '"payloads":["{\\"amount\\":30}","{\\"amount\\":30}"]'
      .. (wait and ',"wait_result":true' or '')
      .. '}'
end

function request()
   counter = counter + 1
   return wrk.format("POST", "/api/dtmsvr/submit", headers, prefix .. counter .. tail)
end

if pause > 0 then
   function delay()
      return pause
   end
end
