/**
 * The byte layout of the shipper's log documents that the indexer recognises without parsing them: written by
 * shipper/log-document.ts (test/unit/log-document.test.ts holds its output equal to JSON.stringify's), read by the
 * indexer's raw path (indexer/documents.ts). A change here changes both, which is the point: the layout is one
 * contract, not two copies of it.
 *
 * `{"@timestamp":"<24-char ISO time>","message":<JSON string>,"event":{"id":"<id>"…,"lifeline":{…,"format":"plain"}}`
 */
export const LOG_HEAD = '{"@timestamp":"';
/** Between the timestamp (24 characters, toISOString's) and the message's JSON string. */
export const AFTER_TIMESTAMP = '","message":';
/** After the message: the event object, its id first. */
export const EVENT_ID_KEY = ',"event":{"id":"';
/** Where a document of this format ends: `lifeline.format`, closing the lifeline object and the document. */
export function formatTail(format: string): string {
  return `"format":"${format}"}}`;
}
