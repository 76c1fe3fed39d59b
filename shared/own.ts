/**
 * `record[key]` if `record` has it as an own property, else undefined. For records keyed by
 * names someone else chose (rooms, participants, nodes, regions, parsed JSON): a plain `record[key]`
 * would read Object.prototype's `constructor`, `toString`... for a key the record lacks.
 */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
