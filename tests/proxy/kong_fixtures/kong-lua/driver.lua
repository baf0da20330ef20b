-- Runs Kong's llama2 driver on the cases of a JSON file, the way Kong's ai-proxy filters call
-- it: parse-request (kong.request.get_body), normalize-request (the checks these cases reach,
-- to_format, set_body) and normalize-json-response (from_format, the 500 of a failed transform).
-- No Kong code here: Kong's kong/llm/drivers/{llama2,shared,openai}.lua and a cjson.so built
-- with OpenResty's lua-cjson rules are looked up under KONG_LUA_DIR (see README.md).
-- Usage: luajit driver.lua KONG_LUA_DIR cases.json > results.json
local ROOT = arg[1]:gsub("/?$", "/")
package.path = ROOT .. "?.lua;" .. package.path
package.cpath = ROOT .. "?.so;" .. package.cpath

-- Kong's cjson set-up: kong/globalpatches.lua configures the shared cjson.safe module,
-- kong/tools/cjson.lua a private instance that decodes arrays with array_mt.
local cjson_safe = require("cjson.safe")
cjson_safe.encode_sparse_array(nil, nil, 2^15)
cjson_safe.encode_number_precision(16)
local kong_cjson = cjson_safe.new()
kong_cjson.decode_array_with_array_mt(true)
kong_cjson.encode_sparse_array(nil, nil, 2^15)
kong_cjson.encode_number_precision(16)
local plain = require("cjson").new()  -- only to read the cases and write the results

-- stubs for what the drivers touch at load or call time
ngx = { DEBUG = 8, ERR = 4, log = function() end, null = cjson_safe.null }
kong = {
  response = { exit = function(status, body) error({ exit = status, body = body }) end },
  ctx = { plugin = {} },
  log = { err = function() end, warn = function() end },
}
for _, name in ipairs({ "resty.http", "kong.tools.aws_stream", "kong.llm.plugin.ctx",
                        "kong.llm.plugin.observability", "kong.tools.table",
                        "resty.gcp.request.credentials.accesstoken", "resty.aws.config",
                        "resty.aws", "kong.llm.state" }) do
  package.preload[name] = function() return {} end
end
package.preload["socket.url"] = function() return { parse = function() return {} end } end
package.preload["kong.tools.string"] = function() return { split = function() return {} end } end

-- the Lua error a transformer raised inside the drivers' pcall (Kong's from_format keeps only
-- its own `err`): recorded here so the result can show it
local raised
local real_pcall = pcall
pcall = function(f, ...)
  local result = { real_pcall(f, ...) }
  if not result[1] then raised = result[2] end
  return unpack(result, 1, table.maxn(result))
end

local llama2 = require("kong.llm.drivers.llama2")

local function deep_copy(t)  -- kong.tools.table.cycle_aware_deep_copy keeps metatables
  if type(t) ~= "table" then return t end
  local copy = {}
  for k, v in pairs(t) do copy[deep_copy(k)] = deep_copy(v) end
  return setmetatable(copy, getmetatable(t))
end

local function kong_path(message)
  if type(message) ~= "string" then return tostring(message) end
  return (message:gsub(ROOT:gsub("%p", "%%%0"), "/usr/local/share/lua/5.1/"))
end

local function error_body(message)  -- normalize-request's bail / normalize-json-response
  return cjson_safe.encode({ error = { message = message } })
end

local function run(case)
  local result = { case = case.case }
  local options = cjson_safe.decode(case.options_json)
  local conf_model = { provider = "llama2", name = case.name ~= plain.null and case.name or nil,
                       options = options }
  options.llama2_format = case.format

  -- parse-request: kong.request.get_body() decodes JSON with kong.tools.cjson
  local body = kong_cjson.decode(case.request)
  if type(body) ~= "table" then body = nil end

  -- normalize-request: validate_and_transform (the checks these cases reach)
  local valid = body and ((type(body.messages) == "table" and #body.messages > 0)
                          or type(body.prompt) == "string")
  if not valid then
    result.status, result.reply = 400, error_body("request body doesn't contain valid prompts")
    return result
  end
  local request_table = {}
  for k, v in pairs(body) do
    if k ~= "messages" then request_table[k] = deep_copy(v) end
  end
  request_table.messages = body.messages
  local model_t = deep_copy(conf_model)
  if (not model_t.name) and type(request_table.model) == "string" then
    model_t.name = request_table.model
  end
  if type(request_table.model) == "string" and request_table.model ~= "" and
     request_table.model ~= model_t.name then
    result.status, result.reply = 400, error_body("cannot use own model - must be: " .. model_t.name)
    return result
  end
  if not model_t.name then
    result.status = 400
    result.reply = error_body("model parameter not found in request, nor in gateway configuration")
    return result
  end
  if request_table.stream then request_table.stream = true end

  raised = nil
  local ok, upstream_table, _, err = real_pcall(llama2.to_format, request_table, model_t,
                                                case.route_type)
  if not ok then
    result.status, result.reply = 400, "(kong.response.exit inside to_format)"
    return result
  end
  if err then
    result.status, result.reply = 400, error_body(err)
    result.lua_error = kong_path(raised)
    return result
  end
  -- kong.service.request.set_body(body, "application/json"): the shared cjson.safe
  result.upstream = cjson_safe.encode(upstream_table)

  -- normalize-json-response: from_format on the upstream's 200 body, conf.model as is
  raised = nil
  local reply, ferr = llama2.from_format(case.upstream_reply, conf_model, case.route_type)
  if ferr then
    result.status, result.reply = 500, error_body(ferr)
    result.lua_error = kong_path(raised)
  else
    result.status, result.reply = 200, reply
  end
  return result
end

local file = assert(io.open(arg[2]))
local cases = plain.decode(file:read("*a"))
file:close()
local results = {}
for i, case in ipairs(cases) do results[i] = run(case) end
plain.encode_keep_buffer(false)
io.write(plain.encode(results))
