/** Request bodies for the load phases. */
const PROFILES = [
  { 'us-west': 20, 'us-east': 75, 'eu-west': 140, apac: 175 },
  { 'us-west': 70, 'us-east': 10, 'eu-west': 80, apac: 230 },
  { 'us-west': 140, 'us-east': 80, 'eu-west': 5, apac: 180 },
  { 'us-west': 165, 'us-east': 225, 'eu-west': 170, apac: 5 },
];

/** Rooms of 10 people, each from one of four places. */
export function allocateBody(i: number): string {
  return JSON.stringify({ roomId: `bench-${Math.floor(i / 10)}`, participantId: `p${i}`, latencies: PROFILES[i % 4] });
}

