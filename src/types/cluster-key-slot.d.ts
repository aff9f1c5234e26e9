/** cluster-key-slot ships no types: the Redis Cluster hash slot of a key (CRC16, hash tags honoured). */
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
