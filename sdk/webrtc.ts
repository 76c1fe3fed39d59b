/**
 * mediasoup-client's browser handlers use the WebRTC globals (RTCPeerConnection, MediaStream...).
 * Browsers have them; in Node inject an implementation, e.g. `@roamhq/wrtc`:
 *
 *   import wrtc from '@roamhq/wrtc';
 *   new GeoSfuClient({ routerUrl, webrtc: wrtc, handlerName: 'Chrome111' });
 */
export interface WebRtcImplementation {
  RTCPeerConnection: unknown;
  RTCSessionDescription?: unknown;
  RTCIceCandidate?: unknown;
  RTCRtpSender?: unknown;
  RTCRtpReceiver?: unknown;
  RTCRtpTransceiver?: unknown;
  MediaStream?: unknown;
  MediaStreamTrack?: unknown;
}

const NAMES = ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate', 'RTCRtpSender', 'RTCRtpReceiver', 'RTCRtpTransceiver', 'MediaStream', 'MediaStreamTrack'] as const;

/** Installs the implementation's classes as globals (overriding nothing a browser already defines unless `force`). */
export function installWebRtc(impl: WebRtcImplementation, opts: { force?: boolean } = {}): void {
  const g = globalThis as Record<string, unknown>;
  for (const name of NAMES) {
    const value = impl[name];
    if (value !== undefined && (opts.force || g[name] === undefined)) g[name] = value;
  }
}

export function hasWebRtc(): boolean {
  return typeof (globalThis as Record<string, unknown>).RTCPeerConnection === 'function';
}
