// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";

/// @title 3DP, the reward token of proof of print
/// @notice ERC-20 with 18 decimals, capped at 3,333,333,333 tokens; only the reward contract that created it mints.
contract ThreeDPToken is ERC20Capped {
    /// @notice The reward contract, the only minter; fixed at creation.
    address public immutable minter;

    /// @notice `caller` is not the reward contract.
    error NotMinter(address caller);

    constructor(address minter_) ERC20("MIPAI 3DP", "3DP") ERC20Capped(3_333_333_333 ether) {
        minter = minter_;
    }

    /// @notice Mint `amount` to `to`; reverts with ERC20ExceededCap past the cap.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _mint(to, amount);
    }
}
