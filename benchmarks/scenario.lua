-- wrk script for the NEXUS benchmark scenarios (benchmarks/run.py writes the config).
--
--   wrk -t1 -c32 -d10s -s benchmarks/scenario.lua http://127.0.0.1:PORT -- /tmp/.../config.lua
--
-- The config file is Lua returning a table:
--   mode      "get" | "list" | "create"
--   token     bearer token, or nil for the bare baseline
--   get_path  prefix for one task; a random id from `ids` is appended        (get)
--   list_path format string with %s for assignee id and status               (list)
--   post_path path to POST a new task to                                      (create)
--   ids, assignees, statuses  lists to pick from at random
-- done() prints one line "WRK_JSON {...}" with counts and latency percentiles in ms.

local cfg = nil
local headers = {}
local post_headers = {}
local counter = 0
local thread_no = 0

function setup(thread)
   thread_no = thread_no + 1
   thread:set("thread_id", thread_no)
end

function init(args)
   cfg = dofile(args[1])
   local tid = thread_id or 1
   math.randomseed(os.time() * 1000 + tid * 7919)
   if cfg.token then
      headers["Authorization"] = "Bearer " .. cfg.token
      post_headers["Authorization"] = "Bearer " .. cfg.token
   end
   post_headers["Content-Type"] = "application/json"
   counter = tid * 1000000000
end

local function pick(list)
   return list[math.random(#list)]
end

function request()
   local mode = cfg.mode
   if mode == "get" then
      return wrk.format("GET", cfg.get_path .. pick(cfg.ids), headers)
   elseif mode == "list" then
      return wrk.format("GET", string.format(cfg.list_path, pick(cfg.assignees), pick(cfg.statuses)), headers)
   else
      counter = counter + 1
      local due = cfg.due_base + math.random(0, 90 * 86400)
      local body = string.format(
         '{"title":"bench task %d","assignee_id":"%s","status":"todo","due_at":"%s"}',
         counter, pick(cfg.assignees), os.date("!%Y-%m-%dT%H:%M:%SZ", due))
      return wrk.format("POST", cfg.post_path, post_headers, body)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local function ms(us) return us / 1000.0 end
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_ms":{"min":%.3f,"mean":%.3f,"stdev":%.3f,"max":%.3f,"p50":%.3f,"p90":%.3f,"p95":%.3f,"p99":%.3f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      ms(latency.min), ms(latency.mean), ms(latency.stdev), ms(latency.max),
      ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(95)),
      ms(latency:percentile(99))))
end
