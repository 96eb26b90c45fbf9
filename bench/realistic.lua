-- wrk script for bench/realistic.py: every request from a random customer.
--
-- The data layout is arithmetic (see seed_bulk.py): customer c is user c + 1, its key
-- is "bench" .. c as 15 digits, and it owns tickets and invoices c, c + N, c + 2N, ...
-- Settings come from the environment:
--   BENCH_CUSTOMERS, BENCH_TICKETS, BENCH_INVOICES   the seeded sizes
--   BENCH_WORKLOAD   getTicketOverview | getTicket | getInvoiceIds | getInvoiceDetails
--                    | mix (reads in proportion, 5% createTicket)
--                    | createTicket100k (a ticket with a 100 KB attachment)
--   BENCH_SEED       random seed (each run asks the same sequence of customers)

local customers = tonumber(os.getenv("BENCH_CUSTOMERS"))
local tickets = tonumber(os.getenv("BENCH_TICKETS"))
local invoices = tonumber(os.getenv("BENCH_INVOICES"))
local workload = os.getenv("BENCH_WORKLOAD")
local seed = tonumber(os.getenv("BENCH_SEED") or "1")
local per_customer_tickets = math.floor(tickets / customers)
local per_customer_invoices = math.floor(invoices / customers)
local path = "/api/rest/v2/administration"
local headers = { ["Content-Type"] = "application/json" }
local today = os.time()
local counter = 0

math.randomseed(seed)

local function credentials(c)
  return string.format('"userId":%d,"apiKey":"bench%015d"', c + 1, c)
end

local function some_ticket(c)
  return c + math.random(0, per_customer_tickets - 1) * customers
end

local function some_invoice(c)
  return c + math.random(0, per_customer_invoices - 1) * customers
end

local function day(offset)
  return os.date("!%d-%m-%Y", today - offset * 86400)
end

-- 102,402 zero bytes in base64 (a 100 KB attachment)
local attachment = string.rep("A", 136536)

local bodies = {
  getTicketOverview = function(c)
    return string.format('{%s,"action":"getTicketOverview"}', credentials(c))
  end,
  getTicket = function(c)
    return string.format('{%s,"action":"getTicket","ticketId":%d}', credentials(c), some_ticket(c))
  end,
  getInvoiceIds = function(c)
    -- a 90-day window somewhere in the two years of invoices
    local start = math.random(90, 730)
    return string.format(
      '{%s,"action":"getInvoiceIds","status":-1,"dateStart":"%s","dateEnd":"%s"}',
      credentials(c), day(start), day(start - 90))
  end,
  getInvoiceDetails = function(c)
    return string.format(
      '{%s,"action":"getInvoiceDetails","invoiceId":%d}', credentials(c), some_invoice(c))
  end,
  createTicket = function(c)
    counter = counter + 1
    return string.format(
      '{%s,"action":"createTicket","title":"Load test %d","content":"%s","priorityId":2}',
      credentials(c), counter,
      "The server does not answer on port 443 since this morning; please have a look.")
  end,
  createTicket100k = function(c)
    counter = counter + 1
    return string.format(
      '{%s,"action":"createTicket","title":"Crash dump %d","content":"%s","priorityId":2,'
      .. '"attachments":[{"name":"dump.bin","contentType":"application/octet-stream",'
      .. '"size":102402,"content":"%s"}]}',
      credentials(c), counter, "The dump of this morning's crash is attached.", attachment)
  end,
}

-- The mix: what a customer's dashboard polls most, a few detail views, 5% writes.
local mix = {}
for _ = 1, 40 do table.insert(mix, "getTicketOverview") end
for _ = 1, 25 do table.insert(mix, "getTicket") end
for _ = 1, 15 do table.insert(mix, "getInvoiceIds") end
for _ = 1, 15 do table.insert(mix, "getInvoiceDetails") end
for _ = 1, 5 do table.insert(mix, "createTicket") end

request = function()
  local c = math.random(1, customers)
  local action = workload
  if workload == "mix" then
    action = mix[math.random(1, #mix)]
  end
  return wrk.format("POST", path, headers, bodies[action](c))
end

local failures = 0
response = function(status, _, body)
  if status ~= 200 or not string.find(body, '"status":"Success"', 1, true) then
    failures = failures + 1
    if failures <= 3 then
      io.stderr:write("unexpected answer: " .. status .. " " .. string.sub(body, 1, 300) .. "\n")
    end
  end
end
