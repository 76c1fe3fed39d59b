/**
 * geo-sfu client SDK (browsers and Node): `import { GeoSfuClient } from 'geo-sfu/sdk'`.
 * The application's backend mints grants with `createGrant` from 'geo-sfu/sdk/server'.
 */
export { GeoSfuClient, type GeoSfuClientOptions, type AllocateOptions, type JoinOptions } from './client.ts';
export { GeoSfuRoom, type RoomEvents, type RoomListeners, type RemoteTrack, type EdgeInfo } from './room.ts';
export { DEFAULT_SIMULCAST, SignalingError, type DeviceOptions, type PublishOptions } from './edge-session.ts';
export { GeoSfuClientError, NO_ALLOWED_REGION, RouterApi, parseRetryAfter, type Allocation, type SfuAllocation, type P2pAllocation, type AllocateAuth } from './router-api.ts';
export { probeRegionsView, summarizeSamples, type ProbeRegionsOptions, type ProbeResult, type RegionProbeResult, type NodeProbeResult, type SampleStats } from './probe.ts';
export { installWebRtc, hasWebRtc, type WebRtcImplementation } from './webrtc.ts';
export { TypedEmitter } from './events.ts';
export { PROTOCOL_VERSION } from '../shared/signaling.ts';
export type { PeerInfoMessage, ProducerInfoMessage, ServerEvents } from '../shared/signaling.ts';
export type { RegionsResponse } from '../shared/schemas/views.ts';
