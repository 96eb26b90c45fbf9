// The pattern of Node scripts on request-promise: json: true, which rejects any non-2xx
// answer (StatusCodeError) before the script can read msg.
const rp = require("request-promise");
const [url, userId, apiKey] = process.argv.slice(2);
const call = (action, params = {}) =>
  rp({ method: "POST", uri: url, json: true, body: { userId: Number(userId), apiKey, action, ...params } });

(async () => {
  const overview = await call("getTicketOverview");
  const created = await call("createTicket", { title: "From Node", content: "request-promise" });
  const ticketId = created.data.ticketId;
  await call("closeTicket", { ticketId });
  const reopened = await call("reopenTicket", { ticketId });
  const missing = await call("getTicket", { ticketId: 999999 });
  const denied = await rp({ method: "POST", uri: url, json: true,
    body: { userId: Number(userId), apiKey: "x".repeat(20), action: "getTicket", ticketId } });
  console.log(JSON.stringify({
    tickets: overview.data.tickets.length, ticketId, reopened: reopened.data.ticket,
    missing: [missing.status, missing.data.errorCode, missing.msg.length > 0],
    denied: denied.data.errorCode,
  }));
})().catch((error) => { console.error(String(error)); process.exit(1); });
