/**
 * Lua scripts of RedisRoomStore. Each runs atomically in Redis, so two routers can never both pin a
 * home, both take a node's last slot, or both win a re-home. Every script on one room takes the
 * same KEYS, built by RedisRoomStore: 1 room hash, 2 participants hash, 3 node counts hash,
 * 4 pending-expiry sorted set, 5 room-id set, 6 room-version counter, 7 P2P participants hash,
 * 8 rebalancing plans hash, 9 kicks hash (participantId → when an admin removed it; the key expires
 * with the latest kick's memory, independently of the room), 10 earlier-nodes hash (participantId →
 * the other nodes it held allocations on since it last joined, space-separated: ids hold no space).
 *
 * A P2P room is its P2P participants hash alone (participantId → JSON P2pParticipantRecord with
 * `leaseUntilMs` and `status` as its first keys, rewritten in place like the status above). The
 * hash expires with its latest lease, so "the key exists" is "the room is P2P": ALLOCATE refuses
 * while it does, and P2P_ALLOCATE refuses while the SFU room has participants.
 *
 * A room's region policy is the `policy` field of its hash (the canonical JSON of policyKey; absent:
 * none), written with the pin, so it expires with the room. A P2P room's policy is the `policy` field
 * (that same string) of each of its participants' records.
 *
 * A room's version (see RoomStore) is the `version` field of its hash, taken from the counter shared
 * by all rooms, so a version is never handed out twice. A hash written before versions existed has
 * none and counts as 0, like a missing room; the home check still tells the two apart.
 *
 * Participant records are JSON written by the store with `status` as the first key, so a script can
 * rewrite the status without re-encoding the record (Redis's cjson turns `{}` into `[]` and rounds
 * numbers to 14 digits). Scripts only ever decode records.
 */

export const ALLOCATED_RECORD_HEAD = '{"status":"allocated"';
const JOINED_RECORD_HEAD = '{"status":"joined"';

const HELPERS = `
local function bumpVersion()
  local version = redis.call('INCR', KEYS[6])
  redis.call('HSET', KEYS[1], 'version', version)
  return version
end

local function releaseNode(countsKey, nodeId)
  if redis.call('HINCRBY', countsKey, nodeId, -1) <= 0 then redis.call('HDEL', countsKey, nodeId) end
end

-- Drops a participant with its reservation and pending expiry; an emptied room starts its idle TTL.
local function removeParticipant(participantId, nodeId, member, idleTtlMs)
  redis.call('HDEL', KEYS[2], participantId)
  redis.call('HDEL', KEYS[8], participantId)
  redis.call('HDEL', KEYS[10], participantId)
  releaseNode(KEYS[3], nodeId)
  redis.call('ZREM', KEYS[4], member)
  bumpVersion()
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('PEXPIRE', KEYS[1], idleTtlMs)
    redis.call('DEL', KEYS[8])
    redis.call('DEL', KEYS[10])
  end
end
`;

/**
 * ARGV: roomId, proposedRegion, proposedNode, expectedHome ('' = the room was empty), participantId,
 * record, nodeId, pendingMember, expiresAtMs ('' = joined, nothing pending), nodeLimit, nowMs,
 * expectedVersion ('' = not checked), roomLimit ('0' = none; the participant's own record does not count),
 * grantIssuedAtMs ('' = no grant), policy ('' = none).
 * Returns {'ok', home, homeNode, epoch, createdAt, version, previousVersion, replacedRecord|nil} |
 * {'stale', home, homeNode, epoch, createdAt, version, participants as HGETALL, plans as HGETALL, policy}
 * ({'stale'} alone: no such room) | {'room_full'} | {'node_full'} | {'p2p'} (the room is in P2P mode) |
 * {'kicked'} | {'policy_conflict', the room's policy}. Checks everything before writing anything. The
 * participant's rebalancing plan, if any, is used up.
 */
export const ALLOCATE = `${HELPERS}
if ARGV[14] ~= '' then
  local kickedAt = redis.call('HGET', KEYS[9], ARGV[5])
  if kickedAt and tonumber(ARGV[14]) <= tonumber(kickedAt) then return {'kicked'} end
end
if redis.call('EXISTS', KEYS[7]) == 1 then
  for _, record in ipairs(redis.call('HVALS', KEYS[7])) do
    local policy = cjson.decode(record).policy or ''
    if policy ~= ARGV[15] then return {'policy_conflict', policy} end
  end
  return {'p2p'}
end
local room = redis.call('HMGET', KEYS[1], 'home', 'homeNode', 'epoch', 'createdAt', 'version', 'policy')
if room[1] and (room[6] or '') ~= ARGV[15] then return {'policy_conflict', room[6] or ''} end
local version = room[5] or '0'
if (room[1] and room[1] ~= ARGV[4]) or (ARGV[12] ~= '' and version ~= ARGV[12]) then
  if not room[1] then return {'stale'} end
  return {'stale', room[1], room[2], room[3], room[4], version, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[8]), room[6] or ''}
end
local previous = redis.call('HGET', KEYS[2], ARGV[5])
local roomLimit = tonumber(ARGV[13])
if roomLimit > 0 and redis.call('HLEN', KEYS[2]) - (previous and 1 or 0) >= roomLimit then return {'room_full'} end
local previousNode = previous and cjson.decode(previous).nodeId
local reserved = tonumber(redis.call('HGET', KEYS[3], ARGV[7]) or '0')
if previousNode == ARGV[7] then reserved = reserved - 1 end
if reserved >= tonumber(ARGV[10]) then return {'node_full'} end

if not room[1] then
  room = {ARGV[2], ARGV[3], '0', ARGV[11]}
  redis.call('HSET', KEYS[1], 'home', room[1], 'homeNode', room[2], 'epoch', room[3], 'createdAt', room[4])
  if ARGV[15] ~= '' then redis.call('HSET', KEYS[1], 'policy', ARGV[15]) end
  redis.call('SADD', KEYS[5], ARGV[1])
end
redis.call('PERSIST', KEYS[1])
if previousNode then releaseNode(KEYS[3], previousNode) end
local known = previous and redis.call('HGET', KEYS[10], ARGV[5])
if known or (previousNode and previousNode ~= ARGV[7]) then
  local earlier = {}
  for id in string.gmatch(known or '', '%S+') do
    if id ~= ARGV[7] and id ~= previousNode then earlier[#earlier + 1] = id end
  end
  if previousNode and previousNode ~= ARGV[7] then earlier[#earlier + 1] = previousNode end
  if #earlier > 0 then redis.call('HSET', KEYS[10], ARGV[5], table.concat(earlier, ' ')) else redis.call('HDEL', KEYS[10], ARGV[5]) end
end
redis.call('HINCRBY', KEYS[3], ARGV[7], 1)
redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
redis.call('HDEL', KEYS[8], ARGV[5])
if ARGV[9] == '' then
  redis.call('ZREM', KEYS[4], ARGV[8])
else
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[8])
end
return {'ok', room[1], room[2], room[3], room[4], bumpVersion(), version, previous}
`;

/**
 * ARGV: participantId, allocationId, pendingMember. Returns {'joined', earlier node ids
 * space-separated} (handed out once) | {'replaced'} | {'removed'} | {'unknown'}.
 */
export const MARK_JOINED = `
local record = redis.call('HGET', KEYS[2], ARGV[1])
if not record then
  if redis.call('HEXISTS', KEYS[9], ARGV[1]) == 1 then return {'removed'} end
  return {'unknown'}
end
if cjson.decode(record).allocationId ~= ARGV[2] then return {'replaced'} end
if string.sub(record, 1, ${ALLOCATED_RECORD_HEAD.length}) == '${ALLOCATED_RECORD_HEAD}' then
  redis.call('HSET', KEYS[2], ARGV[1], '${JOINED_RECORD_HEAD}' .. string.sub(record, ${ALLOCATED_RECORD_HEAD.length + 1}))
  redis.call('ZREM', KEYS[4], ARGV[3])
end
local earlier = redis.call('HGET', KEYS[10], ARGV[1]) or ''
redis.call('HDEL', KEYS[10], ARGV[1])
return {'joined', earlier}
`;

/**
 * ARGV: participantId, pendingMember, idleTtlMs, atMs, untilMs. Removes the participant and records
 * the kick (the kicks hash lives until the latest kick's untilMs). Returns {removed record, earlier
 * node ids space-separated} or nil (nothing changed) when the participant is not in the room.
 */
export const KICK = `${HELPERS}
local record = redis.call('HGET', KEYS[2], ARGV[1])
if not record then return nil end
local earlier = redis.call('HGET', KEYS[10], ARGV[1]) or ''
removeParticipant(ARGV[1], cjson.decode(record).nodeId, ARGV[2], ARGV[3])
redis.call('HSET', KEYS[9], ARGV[1], ARGV[4])
local expiresAt = redis.call('PEXPIRETIME', KEYS[9])
if expiresAt < 0 or expiresAt < tonumber(ARGV[5]) then redis.call('PEXPIREAT', KEYS[9], ARGV[5]) end
return {record, earlier}
`;

/** ARGV: participantId, allocationId ('' = any), pendingMember, idleTtlMs. Returns the removed record or nil. */
export const REMOVE = `${HELPERS}
local record = redis.call('HGET', KEYS[2], ARGV[1])
if not record then return nil end
local participant = cjson.decode(record)
if ARGV[2] ~= '' and participant.allocationId ~= ARGV[2] then return nil end
removeParticipant(ARGV[1], participant.nodeId, ARGV[3], ARGV[4])
return record
`;

/**
 * ARGV: participantId, pendingMember, nowMs, idleTtlMs. Removes the participant if it is still an
 * allocation past its expiry (it may have joined or been re-allocated since the caller's scan).
 * Returns {removed record, earlier node ids space-separated} or nil.
 */
export const EXPIRE = `${HELPERS}
local record = redis.call('HGET', KEYS[2], ARGV[1])
local participant = record and cjson.decode(record)
if participant and participant.status == 'allocated' then
  if participant.expiresAtMs > tonumber(ARGV[3]) then return nil end
  local earlier = redis.call('HGET', KEYS[10], ARGV[1]) or ''
  removeParticipant(ARGV[1], participant.nodeId, ARGV[2], ARGV[4])
  return {record, earlier}
end
redis.call('ZREM', KEYS[4], ARGV[2])
return nil
`;

/**
 * ARGV: expectedVersion, nowMs, then participantId and plan JSON pairs. Replaces the room's plans if
 * the room is at that version and no plan is live at nowMs. Returns the new version or nil.
 */
export const PLAN_MOVES = `${HELPERS}
local version = redis.call('HGET', KEYS[1], 'version')
if not version or version ~= ARGV[1] then return nil end
for _, plan in ipairs(redis.call('HVALS', KEYS[8])) do
  if cjson.decode(plan).expiresAtMs > tonumber(ARGV[2]) then return nil end
end
redis.call('DEL', KEYS[8])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1]) end
return bumpVersion()
`;

/** ARGV: expectedEpoch, region, nodeId. Returns {home, homeNode, epoch, createdAt, policy} or nil. */
export const REHOME = `${HELPERS}
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch or tonumber(epoch) ~= tonumber(ARGV[1]) then return nil end
redis.call('HSET', KEYS[1], 'home', ARGV[2], 'homeNode', ARGV[3], 'epoch', tonumber(epoch) + 1)
bumpVersion()
return redis.call('HMGET', KEYS[1], 'home', 'homeNode', 'epoch', 'createdAt', 'policy')
`;

/**
 * KEYS: room-id set, then one room hash per ARGV room id. Removes ids whose room hash has expired
 * (checked and removed in one step, so a room re-created meanwhile keeps its id). Returns live ids.
 */
export const PRUNE_ROOM_IDS = `
local live = {}
for i, roomId in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    live[#live + 1] = roomId
  else
    redis.call('SREM', KEYS[1], roomId)
  end
end
return live
`;

const P2P_HELPERS = `
-- Drops the P2P participants whose lease ran out; returns the live records and the latest lease.
local function liveMesh(nowMs)
  local all = redis.call('HGETALL', KEYS[7])
  local live = {}
  local latest = 0
  for i = 1, #all, 2 do
    local lease = cjson.decode(all[i + 1]).leaseUntilMs
    if lease <= nowMs then
      redis.call('HDEL', KEYS[7], all[i])
    else
      live[#live + 1] = all[i + 1]
      if lease > latest then latest = lease end
    end
  end
  return live, latest
end

-- The P2P room lives as long as its latest lease.
local function keepMeshUntil(latest, nowMs)
  if latest > nowMs then redis.call('PEXPIRE', KEYS[7], math.ceil(latest - nowMs)) else redis.call('DEL', KEYS[7]) end
end
`;

/**
 * ARGV: participantId, record, maxParticipants, nowMs, leaseUntilMs, policy ('' = none; the record
 * carries it too). Returns {'ok', replacedRecord or '', live records...} | {'full', live records...} |
 * {'sfu'} | {'policy_conflict', the room's policy}.
 */
export const P2P_ALLOCATE = `${P2P_HELPERS}
local nowMs = tonumber(ARGV[4])
local sfuRoom = redis.call('HEXISTS', KEYS[1], 'home') == 1
local live, latest = liveMesh(nowMs)
local roomPolicy = ARGV[6]
if sfuRoom then roomPolicy = redis.call('HGET', KEYS[1], 'policy') or '' elseif #live > 0 then roomPolicy = cjson.decode(live[1]).policy or '' end
if roomPolicy ~= ARGV[6] then return {'policy_conflict', roomPolicy} end
if sfuRoom and redis.call('EXISTS', KEYS[2]) == 1 then return {'sfu'} end
local previous = redis.call('HGET', KEYS[7], ARGV[1])
local others = #live
if previous then others = others - 1 end
if others >= tonumber(ARGV[3]) then return {'full', unpack(live)} end
-- An SFU room left empty gives way to the P2P one.
if sfuRoom then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[7], ARGV[1], ARGV[2])
keepMeshUntil(math.max(latest, tonumber(ARGV[5])), nowMs)
return {'ok', previous or '', unpack(redis.call('HVALS', KEYS[7]))}
`;

/**
 * ARGV: nowMs, leaseUntilMs, then participantId, allocationId pairs. Renews those participants
 * (current allocations only) and marks them connected. Returns the live records, or nil when the
 * room is not P2P.
 */
export const P2P_RENEW = `${P2P_HELPERS}
local nowMs = tonumber(ARGV[1])
local live, latest = liveMesh(nowMs)
if #live == 0 then return nil end
for i = 3, #ARGV, 2 do
  local record = redis.call('HGET', KEYS[7], ARGV[i])
  if record then
    local participant = cjson.decode(record)
    if participant.allocationId == ARGV[i + 1] then
      local lease = math.max(participant.leaseUntilMs, tonumber(ARGV[2]))
      local renewed = string.gsub(record, '^{"leaseUntilMs":%d+,"status":"%a+"', '{"leaseUntilMs":' .. string.format('%.0f', lease) .. ',"status":"connected"', 1)
      redis.call('HSET', KEYS[7], ARGV[i], renewed)
      if lease > latest then latest = lease end
    end
  end
end
keepMeshUntil(latest, nowMs)
return redis.call('HVALS', KEYS[7])
`;

/** ARGV: participantId, allocationId, nowMs. Returns 1 when removed, else 0. */
export const P2P_REMOVE = `${P2P_HELPERS}
local record = redis.call('HGET', KEYS[7], ARGV[1])
if not record or cjson.decode(record).allocationId ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[7], ARGV[1])
local nowMs = tonumber(ARGV[3])
local live, latest = liveMesh(nowMs)
keepMeshUntil(latest, nowMs)
return 1
`;

/**
 * The reconcile's re-creation of a participant Redis does not know but its node serves (an
 * allocation acknowledged and lost with a failed-over primary, or whose join or leave never
 * reached Redis). ARGV: roomId, participantId, record (joined, on its node, with `adoptedAtMs`),
 * nodeId, region, nowMs. Returns {outcome}: `known` (that allocation is recorded), `replaced` (the
 * participant holds another allocation in Redis: the pass drops it first if no node serves it),
 * `removed` (an admin removed it), `p2p`, or, written:
 * `pinned` (the room had no home: pinned on this node), `adopted` (the node serves the room as Redis
 * knows it), `conflict` (the room's home in Redis is elsewhere and Redis knew no participant of it on
 * this node: the node was a second home, and its participants are to move). The node's count grows
 * by one with the record, so counts stay equal to the records.
 */
export const ADOPT = `${HELPERS}
if redis.call('EXISTS', KEYS[7]) == 1 then return {'p2p'} end
if redis.call('HEXISTS', KEYS[9], ARGV[2]) == 1 then return {'removed'} end
local current = redis.call('HGET', KEYS[2], ARGV[2])
if current then
  if cjson.decode(current).allocationId == cjson.decode(ARGV[3]).allocationId then return {'known'} end
  return {'replaced'}
end
local room = redis.call('HMGET', KEYS[1], 'home', 'homeNode')
local outcome = 'adopted'
if not room[1] then
  redis.call('HSET', KEYS[1], 'home', ARGV[5], 'homeNode', ARGV[4], 'epoch', '0', 'createdAt', ARGV[6])
  redis.call('SADD', KEYS[5], ARGV[1])
  outcome = 'pinned'
elseif room[2] ~= ARGV[4] then
  outcome = 'conflict'
  for _, record in ipairs(redis.call('HVALS', KEYS[2])) do
    local p = cjson.decode(record)
    if p.nodeId == ARGV[4] and not p.adoptedAtMs then outcome = 'adopted' break end
  end
end
redis.call('PERSIST', KEYS[1])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
bumpVersion()
return {outcome}
`;

/**
 * KEYS: room-id set, node counts hash. ARGV: the key prefix of rooms (`P room:`). Counts every
 * room's participants by node and makes the counts hash equal to it, in one step (so no allocation
 * runs between the count and the write). Returns the corrected nodes as {nodeId, was, now, ...}.
 */
export const RECOUNT = `
local counts = {}
for _, roomId in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local encoded = string.gsub(string.gsub(roomId, '%%', '%%25'), ':', '%%3A')
  for _, record in ipairs(redis.call('HVALS', ARGV[1] .. encoded .. ':participants')) do
    local nodeId = cjson.decode(record).nodeId
    counts[nodeId] = (counts[nodeId] or 0) + 1
  end
end
local corrected = {}
local stored = redis.call('HGETALL', KEYS[2])
local seen = {}
for i = 1, #stored, 2 do
  local nodeId, was = stored[i], tonumber(stored[i + 1])
  seen[nodeId] = true
  local want = counts[nodeId] or 0
  if was ~= want then
    corrected[#corrected + 1] = nodeId
    corrected[#corrected + 1] = was
    corrected[#corrected + 1] = want
    if want == 0 then redis.call('HDEL', KEYS[2], nodeId) else redis.call('HSET', KEYS[2], nodeId, want) end
  end
end
for nodeId, want in pairs(counts) do
  if not seen[nodeId] then
    corrected[#corrected + 1] = nodeId
    corrected[#corrected + 1] = 0
    corrected[#corrected + 1] = want
    redis.call('HSET', KEYS[2], nodeId, want)
  end
end
return corrected
`;

/**
 * KEYS: identity hash, room-version counter. ARGV: the primary's run_id, nowMs. Records which
 * Redis server holds the data: a new run_id (a replica promoted, a server restarted) or a missing
 * hash while rooms have been allocated (data lost) is a change, dated nowMs; a fresh deployment
 * (no hash, no room ever) is none (0). Returns {changedAtMs, 1 when it changed now else 0,
 * reconciledAtMs}: the change a leader's reconcile pass has run after (MARK_RECONCILED; 0: none).
 */
export const IDENTITY = `
local stored = redis.call('HGET', KEYS[1], 'runId')
local reconciledAt = tonumber(redis.call('HGET', KEYS[1], 'reconciledAtMs') or '0')
if stored == ARGV[1] then return {tonumber(redis.call('HGET', KEYS[1], 'changedAtMs') or '0'), 0, reconciledAt} end
local changedAt = tonumber(ARGV[2])
if not stored and redis.call('EXISTS', KEYS[2]) == 0 then changedAt = 0 end
redis.call('HSET', KEYS[1], 'runId', ARGV[1], 'changedAtMs', changedAt)
return {changedAt, 1, reconciledAt}
`;

/**
 * KEYS: identity hash. ARGV: the changedAtMs a reconcile pass started under. Records that a pass
 * has run after that change, unless the server changed again meanwhile. Returns 1 when recorded.
 */
export const MARK_RECONCILED = `
if tonumber(redis.call('HGET', KEYS[1], 'changedAtMs') or '-1') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'reconciledAtMs', ARGV[1])
return 1
`;
