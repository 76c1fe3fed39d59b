import { describe, expect, it } from 'vitest';
import { EMULATED_FAR_MS, EMULATED_NEAR_MS, emulatedLatencies, readParams } from '../../web/src/demo/emulation.ts';

/** The demo page's pure parts: its query parameters and the latencies it sends when emulating a region. */
describe('demo emulation', () => {
  it('sends the chosen region as near and every other one as far', () => {
    expect(emulatedLatencies(['us-west', 'us-east', 'eu-west', 'apac'], 'eu-west')).toEqual({
      'us-west': EMULATED_FAR_MS,
      'us-east': EMULATED_FAR_MS,
      'eu-west': EMULATED_NEAR_MS,
      apac: EMULATED_FAR_MS,
    });
  });

  it('reads room, name and region from the query, falling back to generated ids for anything /allocate would refuse', () => {
    const random = () => 'r4nd0';
    expect(readParams('?room=standup&name=alice&region=apac', random)).toEqual({ room: 'standup', name: 'alice', region: 'apac' });
    expect(readParams('', random)).toEqual({ room: 'demo-r4nd0', name: 'guest-r4nd0', region: null });
    expect(readParams(`?room=${encodeURIComponent('<script>')}&name=${'x'.repeat(129)}&region=EU%20West`, random)).toEqual({ room: 'demo-r4nd0', name: 'guest-r4nd0', region: null });
  });
});
