<?php
// The pattern of public i3D v2 PHP classes: form bodies by http_build_query through
// PHP's HTTP stream wrapper, which (without ignore_errors) returns false for a 4xx and
// drops its body; every answer is decoded as JSON.
class I3dApi {
    public function __construct(private string $url, private int $userId, private string $apiKey) {}

    public function call(string $action, array $params = []): ?array {
        $body = http_build_query(array_merge(
            ['userId' => $this->userId, 'apiKey' => $this->apiKey, 'action' => $action], $params));
        $context = stream_context_create(['http' => [
            'method' => 'POST',
            'header' => "Content-Type: application/x-www-form-urlencoded\r\n",
            'content' => $body,
        ]]);
        $answer = @file_get_contents($this->url, false, $context);
        return $answer === false ? null : json_decode($answer, true);
    }
}

[$script, $url, $userId, $apiKey] = $argv;
$api = new I3dApi($url, (int)$userId, $apiKey);
$created = $api->call('createTicket', [
    'title' => 'From PHP', 'content' => 'A form body',
    'attachments' => [['name' => 'php.txt', 'content' => base64_encode("from php\n"),
                       'contentType' => 'text/plain', 'size' => 9]],
]);
$ticketId = $created['data']['ticketId'];
$thread = $api->call('getTicket', ['ticketId' => $ticketId]);
$attachment = $thread['data']['replies'][0]['attachments'][0];
$file = $api->call('getTicketAttachment', ['ticketId' => $ticketId, 'attachmentId' => $attachment['attachmentId']]);
$missing = $api->call('getTicket', ['ticketId' => 999999]);
echo json_encode([
    'ticketId' => $ticketId,
    'attachment' => $attachment['name'],
    'file' => base64_decode($file['data']['tickets']['content']),
    'missing' => $missing === null ? null : $missing['data']['errorCode'],
]), "\n";
