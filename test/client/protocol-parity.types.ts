/*
 * The client declares its own copy of the wire types, so the published package is self-contained. This
 * file (checked by `tsc --noEmit` in `npm test`) fails to compile as soon as a copy differs from
 * libs/protocol in either direction.
 */
import type * as Client from '@didcomm-mpr/client';
import type * as Protocol from '@didcomm-mpr/protocol';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

export type WireTypesAreTheProtocols = [
  Expect<Equal<Client.EncryptedMessage, Protocol.EncryptedMessage>>,
  Expect<Equal<Client.QueuedMessage, Protocol.QueuedMessage>>,
  Expect<Equal<Client.PushNotificationToken, Protocol.PushNotificationToken>>,
  Expect<Equal<Client.AddMessageParams, Protocol.AddMessageParams>>,
  Expect<Equal<Client.AddMessageResult, Protocol.AddMessageResult>>,
  Expect<Equal<Client.TakeFromQueueParams, Protocol.TakeFromQueueParams>>,
  Expect<Equal<Client.GetAvailableMessageCountParams, Protocol.GetAvailableMessageCountParams>>,
  Expect<Equal<Client.RemoveMessagesParams, Protocol.RemoveMessagesParams>>,
  Expect<Equal<Client.RemoveAllMessagesParams, Protocol.RemoveAllMessagesParams>>,
  Expect<Equal<Client.AddLiveSessionParams, Protocol.AddLiveSessionParams>>,
  Expect<Equal<Client.GetLiveSessionParams, Protocol.GetLiveSessionParams>>,
  Expect<Equal<Client.RemoveLiveSessionParams, Protocol.RemoveLiveSessionParams>>,
  Expect<Equal<Client.GetQueueStatsParams, Protocol.GetQueueStatsParams>>,
  Expect<Equal<Client.QueueStats, Protocol.QueueStats>>,
  Expect<Equal<Client.MessagesReceivedParams, Protocol.MessagesReceivedParams>>,
  Expect<Equal<Client.RpcErrorData, Protocol.RpcErrorData>>,
  Expect<Equal<Client.RpcErrorObject, Protocol.RpcErrorObject>>,
  Expect<Equal<Client.RpcMethods, Protocol.RpcMethods>>,
  Expect<Equal<typeof Client.RpcMethod, typeof Protocol.RpcMethod>>,
  Expect<Equal<typeof Client.RpcNotification, typeof Protocol.RpcNotification>>,
  Expect<Equal<typeof Client.RpcErrorCode, typeof Protocol.RpcErrorCode>>,
  Expect<Equal<Client.RpcMethodName, Protocol.RpcMethodName>>,
  Expect<Equal<Client.RpcErrorCodeValue, Protocol.RpcErrorCodeValue>>,
];
