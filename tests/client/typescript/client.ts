import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const [base, userId, apiKey] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl: base });
const who = { userId: Number(userId), apiKey };

async function main(): Promise<void> {
  const ids = await client.POST("/api/rest/v2/administration/getInvoiceIds", { body: { ...who, status: -1 } });
  if (!ids.data) throw new Error(JSON.stringify(ids.error));
  const invoiceIds = ids.data.data.invoiceIds;
  const details = await client.POST("/api/rest/v2/administration/getInvoiceDetails", { body: { ...who, invoiceId: invoiceIds[0] } });
  const created = await client.POST("/api/rest/v2/administration/createTicket", {
    body: { ...who, title: "From TypeScript", content: "openapi-fetch", priorityId: 3,
            attachments: [{ name: "t.txt", content: Buffer.from("ts").toString("base64"), contentType: "text/plain", size: 2 }] },
    params: { header: { "Idempotency-Key": "ts-1" } },
  });
  const ticketId = created.data!.data.ticketId;
  await client.POST("/api/rest/v2/administration/replyTicket", { body: { ...who, ticketId, content: "More." } });
  const overview = await client.POST("/api/rest/v2/administration/getTicketOverview", { body: { ...who } });
  const thread = await client.POST("/api/rest/v2/administration/getTicket", { body: { ...who, ticketId } });
  const attachmentId = thread.data!.data.replies[0].attachments[0].attachmentId;
  const file = await client.POST("/api/rest/v2/administration/getTicketAttachment", {
    body: { ...who, ticketId, attachmentId }, parseAs: "text",
  });
  const closed = await client.POST("/api/rest/v2/administration/closeTicket", { body: { ...who, ticketId } });
  const reopened = await client.POST("/api/rest/v2/administration/reopenTicket", { body: { ...who, ticketId } });
  const missing = await client.POST("/api/rest/v2/administration/getTicket", { body: { ...who, ticketId: 999999 } });
  console.log(JSON.stringify({
    invoiceIds, number: details.data!.data.invoices[0].number, ticketId,
    inOverview: overview.data!.data.tickets.some((t) => t.ticketId === ticketId),
    file: file.data, closed: closed.data!.data.ticket, reopened: reopened.data!.data.ticket,
    missing: missing.error?.data?.errorCode,
  }));
}
main().catch((e) => { console.error(e); process.exit(1); });
