<?php
// The pattern of a WHMCS provisioning module: JSON bodies with curl, every answer
// decoded as JSON, the envelope read whatever the HTTP status.
function i3d_call(string $url, int $userId, string $apiKey, string $action, array $params = []): array {
    $curl = curl_init($url);
    curl_setopt_array($curl, [
        CURLOPT_POST => true,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
        CURLOPT_POSTFIELDS => json_encode(array_merge(
            ['userId' => $userId, 'apiKey' => $apiKey, 'action' => $action], $params)),
    ]);
    $answer = curl_exec($curl);
    curl_close($curl);
    $decoded = json_decode($answer, true);
    if (!is_array($decoded)) {
        throw new RuntimeException("not JSON: " . substr((string)$answer, 0, 40));
    }
    return $decoded;
}

[$script, $url, $userId, $apiKey] = $argv;
$userId = (int)$userId;
$ids = i3d_call($url, $userId, $apiKey, 'getInvoiceIds');
$created = i3d_call($url, $userId, $apiKey, 'createTicket', [
    'title' => 'From WHMCS', 'content' => 'Server down', 'priorityId' => 4,
    'attachments' => [['name' => 'w.txt', 'content' => base64_encode('whmcs'), 'contentType' => 'text/plain', 'size' => 5]],
]);
$ticketId = $created['data']['ticketId'];
$thread = i3d_call($url, $userId, $apiKey, 'getTicket', ['ticketId' => $ticketId]);
$attachmentId = $thread['data']['replies'][0]['attachments'][0]['attachmentId'];
$file = i3d_call($url, $userId, $apiKey, 'getTicketAttachment', ['ticketId' => $ticketId, 'attachmentId' => $attachmentId]);
$bad = i3d_call($url, $userId, $apiKey, 'getInvoiceIds', ['status' => 7]);
echo json_encode([
    'invoiceIds' => $ids['data']['invoiceIds'],
    'ticketId' => $ticketId,
    'file' => base64_decode($file['data']['tickets']['content']),
    'bad' => $bad['data']['errorCode'],
]), "\n";
