// Original file: proto/recovery.proto

export const Role = {
  ROLE_UNSPECIFIED: 'ROLE_UNSPECIFIED',
  ROLLOUT: 'ROLLOUT',
  REWARD: 'REWARD',
  LEARNER: 'LEARNER',
} as const;

export type Role =
  | 'ROLE_UNSPECIFIED'
  | 0
  | 'ROLLOUT'
  | 1
  | 'REWARD'
  | 2
  | 'LEARNER'
  | 3

export type Role__Output = typeof Role[keyof typeof Role]
