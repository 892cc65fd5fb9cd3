import { RpcNotification } from '@didcomm-mpr/protocol';

export interface NotifiedMessage {
  id: string;
  receivedAt: string;
  /** The payload's stored JSON text, embedded verbatim (no parse and re-serialise of large payloads). */
  payload: string;
}

/**
 * Builds `messagesReceived` notification frames for one connection, splitting the messages so that no frame
 * exceeds `maxFrameBytes` (a single message always fits: payloads are bounded well below the frame limit).
 */
export interface NotificationFrame {
  frame: string;
  /** How many of the messages, in order, this frame carries. */
  messageCount: number;
}

export function buildNotificationFrames(connectionId: string, messages: NotifiedMessage[], maxFrameBytes: number): NotificationFrame[] {
  const head = `{"jsonrpc":"2.0","method":"${RpcNotification.MessagesReceived}","params":{"connectionId":${JSON.stringify(connectionId)},"messages":[`;
  const tail = ']}}';
  const fixedBytes = Buffer.byteLength(head) + Buffer.byteLength(tail);
  const frames: NotificationFrame[] = [];
  let parts: string[] = [];
  let bytes = fixedBytes;
  for (const message of messages) {
    const part = `{"id":${JSON.stringify(message.id)},"receivedAt":"${message.receivedAt}","encryptedMessage":${message.payload}}`;
    const partBytes = Buffer.byteLength(part) + 1;
    if (parts.length > 0 && bytes + partBytes > maxFrameBytes) {
      frames.push({ frame: head + parts.join(',') + tail, messageCount: parts.length });
      parts = [];
      bytes = fixedBytes;
    }
    parts.push(part);
    bytes += partBytes;
  }
  if (parts.length > 0) frames.push({ frame: head + parts.join(',') + tail, messageCount: parts.length });
  return frames;
}
